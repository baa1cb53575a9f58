//! The review service of the home authority. Its decisions arrive with the
//! review-and-mail work; until then every call answers UNIMPLEMENTED so that
//! nothing pretends to succeed.

use std::sync::Arc;

use tongban_proto::common::v1::CaseView;
use tongban_proto::review::v1::review_server::Review;
use tongban_proto::review::v1::*;
use tonic::{Request, Response, Status, Streaming};

use super::Ctx;

pub(crate) struct ReviewService {
    _ctx: Arc<Ctx>,
}

impl ReviewService {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { _ctx: ctx }
    }
}

fn not_yet(what: &str) -> Status {
    Status::unimplemented(format!("review {what} is not implemented on this node yet"))
}

#[tonic::async_trait]
impl Review for ReviewService {
    async fn inbox(&self, _: Request<InboxRequest>) -> Result<Response<InboxReply>, Status> {
        Err(not_yet("inbox"))
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
    async fn get_case(&self, _: Request<CaseRef>) -> Result<Response<CaseView>, Status> {
        Err(not_yet("status"))
    }
    async fn overdue(&self, _: Request<OverdueRequest>) -> Result<Response<InboxReply>, Status> {
        Err(not_yet("overdue"))
    }
}
