//! The home authority reviewer's handlers: the inbox and the decisions on
//! a case.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use tongban_proto::common::v1::CorrectionNeed;
use tongban_proto::review;

use super::{Form, Page, Shared, frames, header, page, request_id_of, settle};
use crate::client::retried;
use crate::console::pages;
use crate::console::paging::{PAGE, Pager};

pub(super) async fn inbox(State(c): Shared, Query(q): Query<HashMap<String, String>>) -> Page {
    let pager = Pager::from_query(&q);
    let reply = c
        .review()
        .inbox(review::v1::InboxRequest {
            limit: PAGE,
            page_token: pager.token().to_owned(),
        })
        .await?
        .into_inner();
    let pager = pager.with_next(reply.next_page_token);
    let mut cases = reply.cases;
    // The node pages oldest first (those received first are due first);
    // within the page, fewest working days left first, cases whose clock
    // has not started (not yet accepted) after them.
    cases.sort_by_key(|k| {
        if k.due_date.is_empty() {
            i64::MAX
        } else {
            i64::from(k.working_days_left)
        }
    });
    page(pages::review_inbox(&c, &cases, &pager))
}

pub(super) async fn case(State(c): Shared, Path(no): Path<String>) -> Page {
    let case = c.case(&no).await?;
    page(pages::review_case(&c, &case, None))
}

step!(
    /// Accepts the case at home: its clock starts.
    accept,
    "accept",
    |c, no, f| review.accept(review::v1::CaseRef {
        case_no: no.clone(),
        request_id: request_id_of(&f),
    }),
);

step!(
    /// Records that the paper originals arrived.
    paper_received,
    "paper",
    |c, no, f| review.paper_received(review::v1::CaseRef {
        case_no: no.clone(),
        request_id: request_id_of(&f),
    }),
);

pub(super) async fn correct(State(c): Shared, Path(no): Path<String>, form: Form) -> Response {
    let needs = form
        .multi
        .iter()
        .filter(|(name, _)| name == "need")
        .map(|(_, kind)| CorrectionNeed {
            kind: kind.clone(),
            reason: form.get(&format!("reason:{kind}")),
        })
        .collect();
    let req = review::v1::CorrectRequest {
        case_no: no.clone(),
        needs,
        deadline_days: form.get("deadline").trim().parse().unwrap_or(0),
        request_id: request_id_of(&form.fields),
    };
    let reply = retried(&req.request_id, || {
        let mut client = c.review();
        let req = crate::client::unary(req.clone());
        async move { client.correct(req).await }
    })
    .await;
    settle(
        &c,
        &no,
        "correct",
        reply,
        &form.resend(format!("/case/{no}/correct")),
    )
    .await
}

pub(super) async fn approve(State(c): Shared, Path(no): Path<String>, form: Form) -> Response {
    let Some((_, filename, data)) = form.files.iter().find(|(n, _, _)| n == "result") else {
        let status = tonic::Status::invalid_argument("choose the result document to approve with");
        return settle::<()>(
            &c,
            &no,
            "approve",
            Err(status),
            &form.resend(format!("/case/{no}/approve")),
        )
        .await;
    };
    let result = (header("result", filename, data), data.clone());
    let request_id = request_id_of(&form.fields);
    let first = review::v1::ApproveFrame {
        frame: Some(review::v1::approve_frame::Frame::Header(
            review::v1::ApproveHeader {
                case_no: no.clone(),
                licence_no: form.get("licence_no").trim().to_owned(),
                result: Some(result.0.clone()),
                request_id: request_id.clone(),
            },
        )),
    };
    let reply = retried(&request_id, || {
        let frames = frames(first.clone(), std::slice::from_ref(&result), |ch| {
            review::v1::ApproveFrame {
                frame: Some(review::v1::approve_frame::Frame::Chunk(ch)),
            }
        });
        let mut client = c.review();
        async move { client.approve(frames).await }
    })
    .await;
    settle(
        &c,
        &no,
        "approve",
        reply,
        &form.resend(format!("/case/{no}/approve")),
    )
    .await
}

step!(
    /// Denies with the reviewer's reason.
    deny,
    "deny",
    |c, no, f| review.deny(review::v1::DenyRequest {
        case_no: no.clone(),
        reason: f.get("reason").cloned().unwrap_or_default(),
        request_id: request_id_of(&f),
    }),
);

step!(
    /// Hands the result out at the home authority (collect-home, a denial
    /// collected at home, or a result the post returned).
    handout,
    "handout",
    |c, no, f| review.handout(review::v1::HandoutRequest {
        case_no: no.clone(),
        recipient_id: f.get("recipient_id").map(|s| s.trim().to_uppercase()).unwrap_or_default(),
        request_id: request_id_of(&f),
    }),
);

step!(
    /// Sends the case's parked reports to the window again.
    retry,
    "retry",
    |c, no, f| review.retry(review::v1::CaseRef {
        case_no: no.clone(),
        request_id: request_id_of(&f),
    }),
);

/// The home authority's cases past their promised date, most overdue first.
pub(super) async fn overdue(State(c): Shared, Query(q): Query<HashMap<String, String>>) -> Page {
    let pager = Pager::from_query(&q);
    // Most overdue first, as the node ranks them across pages.
    let reply = c
        .review()
        .overdue(review::v1::OverdueRequest {
            limit: PAGE,
            page_token: pager.token().to_owned(),
        })
        .await?
        .into_inner();
    let pager = pager.with_next(reply.next_page_token);
    page(pages::overdue(&c, &reply.cases, &pager))
}
