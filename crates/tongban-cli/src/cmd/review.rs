//! `tongban review`: the reviewer's commands at the home authority.

use anyhow::Result;
use tongban_proto::common::v1::CorrectionNeed;
use tongban_proto::review::v1::review_client::ReviewClient;
use tongban_proto::review::v1::*;

use super::{Usage, status_error};
use crate::args::{ConnArgs, ReviewCommand};
use crate::client::{connect, materials, upload};
use crate::output::{print_cases, show_case};

pub(crate) async fn run(conn: &ConnArgs, command: ReviewCommand) -> Result<()> {
    let mut client = ReviewClient::new(connect(conn).await?);
    let case = match command {
        ReviewCommand::Inbox => {
            let reply = client
                .inbox(InboxRequest {})
                .await
                .map_err(status_error)?
                .into_inner();
            return print_cases(&reply, &reply.cases, conn.json);
        }
        ReviewCommand::Overdue => {
            let reply = client
                .overdue(OverdueRequest {})
                .await
                .map_err(status_error)?
                .into_inner();
            return print_cases(&reply, &reply.cases, conn.json);
        }
        ReviewCommand::Accept { case } => {
            client
                .accept(CaseRef {
                    case_no: case,
                    request_id: String::new(),
                })
                .await
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
            client
                .correct(CorrectRequest {
                    case_no: case,
                    needs,
                    deadline_days: deadline.unwrap_or(0),
                    request_id: String::new(),
                })
                .await
        }
        ReviewCommand::PaperReceived { case } => {
            client
                .paper_received(CaseRef {
                    case_no: case,
                    request_id: String::new(),
                })
                .await
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
                request_id: String::new(),
            };
            files.truncate(1);
            let first = ApproveFrame {
                frame: Some(approve_frame::Frame::Header(header)),
            };
            let stream = upload(first, files, |c| ApproveFrame {
                frame: Some(approve_frame::Frame::Chunk(c)),
            });
            client.approve(stream).await
        }
        ReviewCommand::Deny { case, reason } => {
            client
                .deny(DenyRequest {
                    case_no: case,
                    reason,
                    request_id: String::new(),
                })
                .await
        }
        ReviewCommand::Handout { case, to_id } => {
            client
                .handout(HandoutRequest {
                    case_no: case,
                    recipient_id: to_id,
                    request_id: String::new(),
                })
                .await
        }
        ReviewCommand::Retry { case } => {
            client
                .retry(CaseRef {
                    case_no: case,
                    request_id: String::new(),
                })
                .await
        }
        ReviewCommand::Status { case } => {
            client
                .get_case(CaseRef {
                    case_no: case,
                    request_id: String::new(),
                })
                .await
        }
    }
    .map_err(status_error)?
    .into_inner();
    show_case(&case, conn.json)
}
