//! `tongban review`: the reviewer's commands at the home authority.

use anyhow::Result;
use tongban_proto::common::v1::CorrectionNeed;
use tongban_proto::review::v1::review_client::ReviewClient;
use tongban_proto::review::v1::*;

use super::{Usage, status_error};
use crate::args::{ConnArgs, ReviewCommand};
use crate::client::call_unary;
use crate::client::{connect, idempotent, materials, request_id, upload};
use crate::output::{print_cases, print_next_page, show_case};

pub(crate) async fn run(conn: &ConnArgs, command: ReviewCommand) -> Result<()> {
    let client = ReviewClient::new(connect(conn).await?);
    let mut reader = client.clone();
    let id = request_id(conn);
    let case = match command {
        ReviewCommand::Inbox { limit, page_token } => {
            let reply = reader
                .inbox(InboxRequest {
                    limit,
                    page_token: page_token.unwrap_or_default(),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            print_cases(&reply, &reply.cases, conn.json)?;
            if !conn.json {
                print_next_page(
                    &format!("tongban review inbox --limit {limit}"),
                    &reply.next_page_token,
                );
            }
            return Ok(());
        }
        ReviewCommand::Overdue => {
            let reply = reader
                .overdue(OverdueRequest::default())
                .await
                .map_err(status_error)?
                .into_inner();
            return print_cases(&reply, &reply.cases, conn.json);
        }
        ReviewCommand::Accept { case } => {
            let request = CaseRef {
                case_no: case,
                request_id: id.clone(),
            };
            call_unary!(&id, client, accept, request)
        }
        ReviewCommand::Correct {
            case,
            needs,
            deadline,
        } => {
            let needs = needs
                .iter()
                .map(|n| {
                    let (kind, reason) = n
                        .split_once(':')
                        .ok_or_else(|| Usage(format!("--need {n:?}: expected KIND:REASON")))?;
                    Ok(CorrectionNeed {
                        kind: kind.trim().to_owned(),
                        reason: reason.trim().to_owned(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let request = CorrectRequest {
                case_no: case,
                needs,
                deadline_days: deadline.unwrap_or(0),
                request_id: id.clone(),
            };
            call_unary!(&id, client, correct, request)
        }
        ReviewCommand::PaperReceived { case } => {
            let request = CaseRef {
                case_no: case,
                request_id: id.clone(),
            };
            call_unary!(&id, client, paper_received, request)
        }
        ReviewCommand::Approve {
            case,
            result,
            licence_no,
        } => {
            let arg = format!("result={}", result.display());
            let mut files = materials(std::slice::from_ref(&arg))?;
            let header = ApproveHeader {
                case_no: case,
                licence_no: licence_no.unwrap_or_default(),
                result: files.first().map(|f| f.header.clone()),
                request_id: id.clone(),
            };
            files.truncate(1);
            let first = ApproveFrame {
                frame: Some(approve_frame::Frame::Header(header)),
            };
            idempotent(&id, || {
                let mut client = client.clone();
                let stream = upload(first.clone(), files.clone(), |c| ApproveFrame {
                    frame: Some(approve_frame::Frame::Chunk(c)),
                });
                async move { client.approve(stream).await }
            })
            .await?
        }
        ReviewCommand::Deny { case, reason } => {
            let request = DenyRequest {
                case_no: case,
                reason,
                request_id: id.clone(),
            };
            call_unary!(&id, client, deny, request)
        }
        ReviewCommand::Handout { case, to_id } => {
            let request = HandoutRequest {
                case_no: case,
                recipient_id: to_id,
                request_id: id.clone(),
            };
            call_unary!(&id, client, handout, request)
        }
        ReviewCommand::Retry { case } => {
            let request = CaseRef {
                case_no: case,
                request_id: id.clone(),
            };
            call_unary!(&id, client, retry, request)
        }
        ReviewCommand::Material {
            case,
            kind,
            out,
            force,
        } => {
            return crate::material::download(case, kind, &out, force, conn.json, |r| {
                reader.material(r)
            })
            .await;
        }
        ReviewCommand::Status { case } => reader
            .get_case(CaseRef {
                case_no: case,
                request_id: String::new(),
            })
            .await
            .map_err(status_error)?
            .into_inner(),
    };
    show_case(&case, conn.json)
}
